/**
 * The payload of the compressed broadcast: an order-book update of a trading venue, the kind of
 * JSON a market-data feed pushes to every subscriber. About 2 KB serialized, different for every
 * message (prices, sizes, trade ids and the sequence number move), repetitive in its keys and
 * formats as such feeds are, so that permessage-deflate has the gain it has in practice (about
 * 3x here) rather than the 50x of a repeated string.
 */

export interface BookLevel {
  readonly price: string;
  readonly size: string;
  readonly orders: number;
}

export interface MarketUpdate {
  readonly type: "book.update";
  readonly venue: string;
  readonly symbol: string;
  readonly seq: number;
  readonly ts: string;
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
  readonly trades: readonly { readonly id: string; readonly price: string; readonly size: string; readonly side: "buy" | "sell"; readonly taker: string }[];
  readonly stats: Readonly<Record<string, string>>;
}

const LEVELS = 14;
const TRADES = 4;

/** A small linear congruential generator: the same update for the same seq in every process. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Update number `seq` of the feed. */
export function marketUpdate(seq: number): MarketUpdate {
  const r = random(seq * 7919 + 1);
  const mid = 64_000 + Math.floor(r() * 200_000) / 100;
  const level = (side: 1 | -1, i: number): BookLevel => ({
    price: (mid + side * (i + 1) * 0.5).toFixed(2),
    size: (r() * 3).toFixed(4),
    orders: 1 + Math.floor(r() * 20),
  });
  const ms = 1_765_000_000_000 + seq * 37;
  return {
    type: "book.update",
    venue: "acme-exchange",
    symbol: "BTC-USD",
    seq,
    ts: new Date(ms).toISOString(),
    bids: Array.from({ length: LEVELS }, (_, i) => level(-1, i)),
    asks: Array.from({ length: LEVELS }, (_, i) => level(1, i)),
    trades: Array.from({ length: TRADES }, (_, i) => ({
      id: `t-${seq}-${i}`,
      price: (mid + r() - 0.5).toFixed(2),
      size: r().toFixed(4),
      side: r() < 0.5 ? "buy" : "sell",
      taker: `acct-${Math.floor(r() * 90_000) + 10_000}`,
    })),
    stats: { open: "63250.00", high: "65110.50", low: "62980.25", volume: (18_000 + seq * 0.37).toFixed(4), vwap: "64012.77", change: "+1.21%" },
  };
}

/** The update serialized as UTF-8 JSON, as the servers without a JSON layer of their own send it. */
export function marketUpdateBytes(seq: number): Buffer {
  return Buffer.from(JSON.stringify(marketUpdate(seq)));
}
