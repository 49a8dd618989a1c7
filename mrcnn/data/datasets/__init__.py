"""Dataset subclasses for public formats (shapes, COCO, MVTec D2S, DeepFashion2, VIA).

``annotations`` holds the parsing shared by several formats (polygons, RLE, JSON reading).
May import: ``mrcnn.data``, ``mrcnn.geometry``, ``mrcnn.config``.
"""
