import { GradientTable } from './rule';
import { elementwiseGradients } from '../ops/elementwise';
import { matmulGradients } from '../ops/matmul';
import { reduceGradients } from '../ops/reduce';
import { shapeGradients } from '../ops/shape';
import { transposeGradients } from '../ops/transpose';

/** Every operator's gradient rule, one table assembled from each op family's own table. */
export const gradientRules: GradientTable = {
  ...elementwiseGradients,
  ...matmulGradients,
  ...reduceGradients,
  ...shapeGradients,
  ...transposeGradients,
};
