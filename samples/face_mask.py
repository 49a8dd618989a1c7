"""Face mask / no mask: one box and one class per image, from a CSV (data: datasets/README.md).

    python samples/face_mask.py train      --dataset datasets/face_mask [--weights none|imagenet|last|PATH]
    python samples/face_mask.py evaluate   --dataset datasets/face_mask --out metrics.json
    python samples/face_mask.py predict    --image IMAGE_OR_DIR [--dataset DIR] --out predictions/
    python samples/face_mask.py submission --dataset DIR [--test-csv test.csv] --out submission.csv

Every command takes ``--logs DIR`` (default logs/face_mask) and ``--set KEY=VALUE``
(``--set BACKBONE='resnet50' --set USE_FPN=True --set CLASS_WEIGHTS=(0.35,0.65)``).
"""

import sys

from localization.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
