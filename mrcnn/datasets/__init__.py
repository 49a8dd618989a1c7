"""Dataset subclasses for public formats (shapes, COCO, MVTec D2S, DeepFashion2, VIA)."""
