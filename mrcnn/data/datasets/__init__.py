"""Dataset subclasses for public formats (shapes, COCO, MVTec D2S, DeepFashion2, VIA,
Kaggle DSB 2018 nuclei).

``annotations`` holds the parsing shared by several formats (polygons, RLE, JSON reading).
``kaggle_rle`` is Kaggle's run-length encoding and submission CSV (``nucleus`` uses it).
May import: ``mrcnn.data``, ``mrcnn.geometry``, ``mrcnn.config``.
"""
