#!/usr/bin/env python3
"""The notebooks' DICOM pipeline, timed for bench_rsna_io's comparison row.

    pydicom_pipeline.py FILE.dcm SIZE REPEAT

pydicom reads the file and decodes the JPEG (Pillow, which uses libjpeg-turbo), the image is
min-max normalised to [0, 1] in float32 and skimage resizes it to SIZE x SIZE with
anti-aliasing, as the course notebooks do. Prints two lines, mean milliseconds per image over
REPEAT runs after one warm-up: "decode_ms <value>" (dcmread + pixel_array) and
"pipeline_ms <value>" (all of it). Run it with OMP_NUM_THREADS=1 for one core.
"""
import sys
import time

import numpy as np
import pydicom
from skimage.transform import resize


def decode(path):
    return pydicom.dcmread(path).pixel_array


def pipeline(path, size):
    image = decode(path).astype(np.float32)
    lo, hi = float(image.min()), float(image.max())
    unit = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return resize(unit, (size, size), anti_aliasing=True)


def mean_ms(fn, repeat):
    fn()  # warm-up: imports, page cache
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return 1000.0 * (time.perf_counter() - start) / repeat


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    path, size, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(f"decode_ms {mean_ms(lambda: decode(path), repeat):.4f}")
    print(f"pipeline_ms {mean_ms(lambda: pipeline(path, size), repeat):.4f}")


if __name__ == "__main__":
    main()
