/**
 * The organs the phantom's label maps mark, in label order (label 0 is background). Names as the BTCV and
 * TotalSegmentator tables spell them; an organ's voxels are those the anatomy paints for it, so the label map
 * agrees with the image everywhere (a rib or vessel drawn over an organ takes its voxels out of the organ).
 */
export const ORGANS = ['liver', 'spleen', 'right kidney', 'left kidney', 'aorta', 'stomach', 'inferior vena cava', 'pancreas', 'gallbladder'] as const;

export type OrganName = (typeof ORGANS)[number];

/** The label value of an organ. */
export function organLabel(name: OrganName): number {
  return ORGANS.indexOf(name) + 1;
}

/** The Decathlon `labels` table: {"0": "background", "1": "liver", ...} (of `organs`, numbered in that order). */
export function organLabelTable(organs: readonly OrganName[] = ORGANS): Record<string, string> {
  return Object.fromEntries([['0', 'background'], ...organs.map((name, i) => [String(i + 1), name])]);
}

/**
 * A label map of the organs `organs` only, numbered 1.. in that order (the others become background): label maps
 * with fewer classes from the same phantoms.
 */
export function selectOrgans(labels: Uint8Array, organs: readonly OrganName[]): Uint8Array {
  const map = new Uint8Array(ORGANS.length + 1);
  organs.forEach((name, i) => (map[organLabel(name)] = i + 1));
  return labels.map((v) => map[v]);
}
