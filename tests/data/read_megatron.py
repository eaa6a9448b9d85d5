#!/usr/bin/env python3
"""An independent reader of Megatron-LM indexed datasets, written from the format description
(REFERENCE.md; Megatron-LM megatron/core/datasets/indexed_dataset.py), sharing no code with
Tessel. Prints the documents' token ids as JSON: [[ids of document 0], [ids of document 1], ...].

  python3 tests/data/read_megatron.py PREFIX
"""
import json
import struct
import sys

DTYPES = {1: ("B", 1), 2: ("b", 1), 3: ("h", 2), 4: ("i", 4), 5: ("q", 8), 6: ("d", 8), 7: ("f", 4), 8: ("H", 2)}


def read(prefix):
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    with open(prefix + ".bin", "rb") as f:
        data = f.read()
    assert idx[:9] == b"MMIDIDX\x00\x00", "bad magic"
    (version,) = struct.unpack_from("<Q", idx, 9)
    assert version == 1, version
    code = idx[17]
    fmt, size = DTYPES[code]
    seq_count, doc_count = struct.unpack_from("<QQ", idx, 18)
    off = 34
    lengths = struct.unpack_from("<%di" % seq_count, idx, off)
    off += 4 * seq_count
    pointers = struct.unpack_from("<%dq" % seq_count, idx, off)
    off += 8 * seq_count
    doc_index = struct.unpack_from("<%dq" % doc_count, idx, off)
    off += 8 * doc_count
    assert off == len(idx), (off, len(idx))
    assert doc_index[0] == 0 and doc_index[-1] == seq_count
    seqs = [list(struct.unpack_from("<%d%s" % (n, fmt), data, p)) for n, p in zip(lengths, pointers)]
    return [sum(seqs[doc_index[d]:doc_index[d + 1]], []) for d in range(doc_count - 1)]


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
