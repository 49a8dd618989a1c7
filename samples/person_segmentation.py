"""Person segmentation and background removal with the U-Net family (data: datasets/README.md).

    python samples/person_segmentation.py make-synthetic --out datasets/synthetic_people
    python samples/person_segmentation.py train --dataset datasets/synthetic_people \
        --logs logs/people --epochs 5 --set ARCH=attention --set IMAGE_SIZE=128
    python samples/person_segmentation.py evaluate --dataset datasets/synthetic_people \
        --logs logs/people --out logs/people/metrics.json
    python samples/person_segmentation.py predict --image photos/ --logs logs/people --out masks/
    python samples/person_segmentation.py submission --image test/ --logs logs/people \
        --out submission.csv
    python samples/person_segmentation.py remove-background --image photo.jpg \
        --logs logs/people --out cutouts/ --background white --feather 1.5

Datasets: ``--dataset DIR`` holds ``images/`` and ``masks/`` (``--images``/``--masks`` name
other folders); ``--format kaggle --csv train.csv`` reads RLE masks; ``--format coco
--annotations person_keypoints_train2017.json --images train2017`` reads COCO persons.
"""

import sys

from unet.cli import main  # quiets TensorFlow's C++ log lines unless --verbose

if __name__ == "__main__":
    sys.exit(main())
