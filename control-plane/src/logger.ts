// The shared logging surface lives in @tollgate/sdk; re-exported for this package's modules.
export type { Logger } from "@tollgate/sdk";
export { silentLogger } from "@tollgate/sdk";
