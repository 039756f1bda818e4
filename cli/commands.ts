import type { CommandModule } from 'yargs';
import { cacheCommand } from './cache';
import { preprocessCommand } from './preprocess';
import { buildGraphCommand } from './build-graph';
import { gradCommand } from './grad';
import { phantomCommand } from './phantom';
import { trainCommand } from './train';
import { finetuneCommand } from './finetune';
import { importWeightsCommand } from './import-weights';
import { exportCommand } from './export';
import { evaluateCommand } from './evaluate';
import { segmentCommand } from './segment';

/** Every `voco` sub-command; each lives in its own file under cli/. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [preprocessCommand, cacheCommand, buildGraphCommand, gradCommand, phantomCommand, trainCommand, finetuneCommand, importWeightsCommand, exportCommand, evaluateCommand, segmentCommand];
