/**
 * The hash functions of the simulated cluster: where a key goes (the partitioner) and which
 * salt a row gets. Integer-only (Math.imul), so every run and every platform agrees.
 */

/** A NULL join key. Keys are positive integers; NULL never equals anything, itself included. */
export const NULL_KEY = -1;

/** murmur3's 32-bit finaliser: a cheap, well-mixed hash of an integer. */
export function mix32(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The reducer of `(key, salt)` among `partitions`: the key's home partition, shifted by the salt.
 * Salts 0..K-1 of one key land on K different reducers as long as K ≤ P — a hash of
 * `(key, salt)` (what `concat(key, salt)` gives in Spark) would let salts collide like balls in bins.
 */
export function partitionOf(key: number, salt: number, partitions: number): number {
  return (((mix32(key) % partitions) + salt) % partitions) >>> 0;
}

/** Where every NULL-key row goes under plain hash partitioning: hash(NULL) is one value, so one reducer. */
export function nullPartition(partitions: number): number {
  return mix32(0x6e756c6c) % partitions;
}

/**
 * A salt in [0, K) derived from the row's identity (its primary key), not from its position or
 * a random draw: a re-run map task gives every row the salt it got the first time.
 */
export function rowSalt(rowId: number, saltFactor: number): number {
  return mix32(rowId ^ 0x5a17ed) % saltFactor;
}
