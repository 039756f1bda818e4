import { GradientRule, GradientTable } from '../autodiff/rule';
import { unbroadcast } from './reduce';
import { reshape } from './shape';

/** For operators that only relabel the elements' shape. */
const reshapeBack: GradientRule = ({ inputs: [x], grad }) => [reshape(grad, x!.shape), null];

export const shapeGradients: GradientTable = {
  Reshape: reshapeBack,
  Identity: ({ grad }) => [grad],
  Expand: ({ inputs: [x], grad }) => [unbroadcast(grad, x!.shape), null],
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Flatten: reshapeBack,
};
