import { GradientTable } from './rule';
import { attentionGradients } from '../ops/attention';
import { convGradients } from '../ops/conv';
import { compareGradients } from '../ops/compare';
import { elementwiseGradients } from '../ops/elementwise';
import { gatherGradients } from '../ops/gather';
import { mathGradients } from '../ops/math';
import { matmulGradients } from '../ops/matmul';
import { normGradients } from '../ops/norm';
import { reduceGradients } from '../ops/reduce-gradients';
import { shapeGradients } from '../ops/shape-gradients';
import { sliceGradients } from '../ops/slice';
import { softmaxGradients } from '../ops/softmax';
import { transposeGradients } from '../ops/transpose';

/** Every operator's gradient rule, one table assembled from each op family's own table. */
export const gradientRules: GradientTable = {
  ...attentionGradients,
  ...convGradients,
  ...normGradients,
  ...compareGradients,
  ...elementwiseGradients,
  ...gatherGradients,
  ...mathGradients,
  ...matmulGradients,
  ...reduceGradients,
  ...shapeGradients,
  ...sliceGradients,
  ...softmaxGradients,
  ...transposeGradients,
};
