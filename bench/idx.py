# idx: the reader of IDX files (the MNIST format) that the bench/ peers share.
# read_idx(path) reads PATH, or PATH.gz when PATH is missing, checks the
# header (magic 0x00000008nn: unsigned bytes, nn dimensions) against the
# body's length, and returns a writable numpy uint8 array shaped by those
# dimensions; a missing or malformed file ends the program with a message
# that names it. The peers run as bench/X.py, so `from idx import read_idx`.
import gzip
import math
import os
import sys

import numpy as np


def read_idx(path):
    """The uint8 array an IDX file of unsigned bytes holds (path or path + ".gz")."""
    prog = os.path.splitext(os.path.basename(sys.argv[0] or "idx"))[0]
    name = next((n for n in (path, path + ".gz") if os.path.exists(n)), None)
    if name is None:
        sys.exit(f"{prog}: {path}: not found (nor .gz); run `make data`")
    try:
        with (gzip.open if name.endswith(".gz") else open)(name, "rb") as f:
            data = bytearray(f.read())
    except (OSError, EOFError) as e:
        sys.exit(f"{prog}: {name}: cannot read: {e}")
    if len(data) < 4 or data[0] or data[1] or data[2] != 0x08:
        sys.exit(f"{prog}: {name}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        sys.exit(f"{prog}: {name}: header of {ndim} dimensions cut short")
    dims = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    if len(data) - head != math.prod(dims):
        sys.exit(f"{prog}: {name}: {len(data) - head} bytes of data, "
                 f"the header's dimensions {dims} want {math.prod(dims)}")
    return np.frombuffer(data, np.uint8, offset=head).reshape(dims)
