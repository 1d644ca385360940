"""recordgen.py — hostile record files (docs/record.md) for the tests of
`record verify` and `record show` on files from an adversary: a record whose
chains hold as many entries as its size allows, each as small as the format
permits, so that whatever a reader keeps per entry shows in its memory.

The records parse (every cap of docs/record.md holds) but do not verify:
their items are one byte that decodes as no item.  The cards are real
(two fresh identities), so the cards section passes."""

import struct

import hlpeer


def tiny_entries_record(path, size):
    """Writes to PATH a record of about SIZE bytes: chain 0 holds
    (SIZE - overhead) / 4 ITEM entries of a one-byte item each (at most
    2^24, the cap), chain 1 the same beyond that; returns (cards, entries)."""
    a, b = hlpeer.Identity("alpha"), hlpeer.Identity("bravo")
    cards = [a.card("127.0.0.1:7100").encode(), b.card("127.0.0.1:7101").encode()]
    head = b"HLRECORD" + bytes([1, 0]) + struct.pack(">Q", 1_700_000_000_000)
    for c in cards:
        head += struct.pack(">H", len(c)) + c
    overhead = len(head) + 4 + 4 + 4 + 4 + 4 + 64
    total = max(1, (size - overhead) // 4)
    cap = 1 << 24
    counts = [min(total, cap), max(0, min(total - cap, cap))]
    entry = b"\x01\x00\x01\x00"
    with open(path, "wb") as f:
        f.write(head)
        for n in counts:
            f.write(struct.pack(">I", n))
            left = n
            block = entry * 65536
            while left:
                k = min(left, 65536)
                f.write(block if k == 65536 else entry * k)
                left -= k
        f.write(struct.pack(">III", 0, 0, 0))
        f.write(bytes(64))
    return cards, sum(counts)


if __name__ == "__main__":
    import sys
    cards, n = tiny_entries_record(sys.argv[1], int(sys.argv[2]))
    for i, c in enumerate(cards):
        with open(f"{sys.argv[1]}.card{i}", "wb") as f:
            f.write(c)
    print(n, "entries")
