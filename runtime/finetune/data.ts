import * as path from 'node:path';
import { pairSource } from '../../data/cache/pair-task';
import { loadSegmentationDatalist, LabelledCase } from '../../data/datalist';
import type { PairLoaderSource } from '../../data/loader/loader';
import { ensurePhantomDataset } from '../../data/phantom/dataset';
import { OrganName, organLabelTable } from '../../data/phantom/organs';
import { Family, FAMILY_PARAMS, FamilyParams } from '../../data/pipeline';
import type { Log } from '../loop/task';
import { FinetuneConfig, FinetuneConfigError } from './config';

/** The seed of the built-in labelled phantoms: fixed, so every default run sees the same volumes. */
const PHANTOM_DATASET_SEED = 0;

/**
 * The built-in labelled phantoms are contrast-enhanced (portal-venous phase), as labelled abdominal sets such as
 * BTCV are; pre-training's phantoms mix plain and enhanced scans.
 */
export const LABELLED_PHANTOM = { contrast: true } as const;

/** Where the built-in labelled phantoms of a run live (written on first use). */
export const phantomDir = (c: FinetuneConfig): string =>
  path.join(c.cacheDir, `labelled-phantoms-${c.phantomCount}-${c.phantomValidation}${c.phantomOrgans ? `-${c.phantomOrgans.length}-organs` : ''}-enhanced`);

export interface FinetuneData {
  readonly datalist: string;
  /** Class names by index, background first. */
  readonly classNames: readonly string[];
  readonly training: PairLoaderSource[];
  /** Empty when the datalist names no validation cases (`missingValidation` says so). */
  readonly validation: PairLoaderSource[];
  readonly missingValidation?: string;
}

/** The preprocessing family of every fine-tuning run's images: its HU window, and its spacing unless `--spacing`. */
export const FINETUNE_FAMILY: Family = 'abdomen';

/** The abdomen chain, at `spacing` (`--spacing`) when given. */
export function chainParams(spacing: FinetuneConfig['spacing']): FamilyParams {
  const family = FAMILY_PARAMS[FINETUNE_FAMILY];
  return spacing ? { ...family, pixdim: [...spacing] } : family;
}

/**
 * The cache sources of labelled cases through the fine-tuning chain at `spacing`: what `voco finetune` reads, and
 * what `voco cache build` of a labelled datalist fills (the same keys).
 */
export function finetunePairSources(cases: readonly LabelledCase[], spacing: FinetuneConfig['spacing']): PairLoaderSource[] {
  const params = chainParams(spacing);
  return cases.map((k) => pairSource(k.image, k.label, FINETUNE_FAMILY, params) as PairLoaderSource);
}

/** Every pair of a labelled datalist (training, then validation) as `voco finetune` at `spacing` reads them. */
export function datalistPairSources(datalist: string, spacing: FinetuneConfig['spacing']): PairLoaderSource[] {
  const list = loadSegmentationDatalist(datalist, { checkGrids: false });
  return finetunePairSources([...list.training, ...(list.validation ?? [])], spacing);
}

/** The class names of the built-in phantoms' label maps marking `organs` (all when undefined), background first. */
export function phantomClassNames(organs?: readonly OrganName[]): Map<number, string> {
  return new Map(Object.entries(organLabelTable(organs)).map(([k, v]) => [Number(k), v]));
}

/** The classes of a run before its data is read: `--out-channels`, the phantoms' table, or the datalist's `labels`. */
export function classNamesOf(c: FinetuneConfig): string[] {
  const table = c.data === undefined ? phantomClassNames(c.phantomOrgans) : loadSegmentationDatalist(c.data, { checkGrids: false }).classNames;
  const count = c.outChannels ?? (table ? Math.max(...table.keys()) + 1 : undefined);
  if (count === undefined) throw new FinetuneConfigError(`${c.data}: has no "labels" table; give --out-channels (the classes, background included)`);
  return Array.from({ length: count }, (_, i) => table?.get(i) ?? (i === 0 ? 'background' : `class ${i}`));
}

/**
 * The labelled pairs of the run: `--data`, or the built-in phantoms (written into the cache folder the first
 * time). Grids are checked when each pair is preprocessed, so that a bad pair is skipped with a warning as any
 * bad file is (or stops the run with --on-bad-file fail).
 */
export function resolveFinetuneData(c: FinetuneConfig, log: Log): FinetuneData {
  let datalist = c.data;
  if (datalist === undefined) {
    const dir = phantomDir(c);
    const organs = c.phantomOrgans ? `, labels: ${c.phantomOrgans.join(', ')}` : '';
    log(`no --data given: fine-tuning on ${c.phantomCount - c.phantomValidation} built-in labelled contrast-enhanced phantom CTs (${c.phantomValidation} for validation${organs}) in ${dir}`);
    const organOption = c.phantomOrgans ? { organs: c.phantomOrgans } : {};
    datalist = ensurePhantomDataset(dir, { count: c.phantomCount, validation: c.phantomValidation, seed: PHANTOM_DATASET_SEED, phantom: LABELLED_PHANTOM, ...organOption });
  }
  const list = loadSegmentationDatalist(datalist, { checkGrids: false });
  const sources = (cases: readonly LabelledCase[]) => finetunePairSources(cases, c.spacing);
  const validation = list.validation ?? [];
  return {
    datalist,
    classNames: classNamesOf(c),
    training: sources(list.training),
    validation: sources(c.valCases > 0 ? validation.slice(0, c.valCases) : validation),
    ...(list.missingValidation ? { missingValidation: list.missingValidation } : {}),
  };
}

