/**
 * Tissue classes of the phantom and their CT numbers. `hu` is the plain scan, `contrast` the portal-venous phase
 * after iodinated contrast (vessels and perfused organs brighten, the rest does not); `texture` is the amplitude
 * in HU of the smooth low-frequency variation inside the tissue.
 */
export interface Tissue {
  readonly name: string;
  readonly hu: number;
  readonly contrast: number;
  readonly texture: number;
}

const table = {
  air: { hu: -1000, contrast: -1000, texture: 0 },
  skin: { hu: 30, contrast: 35, texture: 5 },
  fat: { hu: -100, contrast: -100, texture: 8 },
  muscle: { hu: 50, contrast: 60, texture: 8 },
  visceralFat: { hu: -90, contrast: -90, texture: 12 },
  lung: { hu: -850, contrast: -850, texture: 35 },
  blood: { hu: 40, contrast: 190, texture: 3 },
  vein: { hu: 40, contrast: 150, texture: 3 },
  myocardium: { hu: 45, contrast: 110, texture: 5 },
  liver: { hu: 60, contrast: 110, texture: 8 },
  spleen: { hu: 48, contrast: 120, texture: 8 },
  pancreas: { hu: 42, contrast: 95, texture: 10 },
  kidneyCortex: { hu: 35, contrast: 185, texture: 6 },
  kidneyMedulla: { hu: 30, contrast: 105, texture: 6 },
  gutWall: { hu: 40, contrast: 85, texture: 6 },
  fluid: { hu: 12, contrast: 14, texture: 4 },
  gas: { hu: -990, contrast: -990, texture: 5 },
  feces: { hu: -60, contrast: -60, texture: 120 },
  cortical: { hu: 1000, contrast: 1000, texture: 90 },
  cancellous: { hu: 280, contrast: 280, texture: 70 },
  rib: { hu: 650, contrast: 650, texture: 80 },
  disc: { hu: 85, contrast: 90, texture: 8 },
  csf: { hu: 8, contrast: 10, texture: 3 },
} satisfies Record<string, Omit<Tissue, 'name'>>;

export type TissueName = keyof typeof table;

/** Tissues in label order: label 0 is air. */
export const TISSUES: readonly Tissue[] = Object.entries(table).map(([name, t]) => ({ name, ...t }));

const labels = new Map(TISSUES.map((t, i) => [t.name, i]));

/** The label value of a tissue in the phantom's label volume. */
export function label(name: TissueName): number {
  return labels.get(name) as number;
}
