"""Feature pyramid network (P2..P6) on top of the backbone's C2..C5, Matterport layer names."""

from __future__ import annotations

import keras
from keras import layers


def build_fpn(channels: tuple[int, int, int, int], pyramid_size: int = 256) -> keras.Model:
    """[C2, C3, C4, C5] -> [P2, P3, P4, P5, P6], each with ``pyramid_size`` channels.

    ``channels`` are the channel counts of C2..C5. P6 is a stride-2 subsample of P5 used only
    by the RPN (for the largest anchors).
    """
    c2, c3, c4, c5 = (keras.Input(shape=(None, None, c), name=f"c{i + 2}") for i, c in enumerate(channels))
    p5 = layers.Conv2D(pyramid_size, 1, name="fpn_c5p5")(c5)
    p4 = layers.Add(name="fpn_p4add")(
        [layers.UpSampling2D(2, name="fpn_p5upsampled")(p5), layers.Conv2D(pyramid_size, 1, name="fpn_c4p4")(c4)]
    )
    p3 = layers.Add(name="fpn_p3add")(
        [layers.UpSampling2D(2, name="fpn_p4upsampled")(p4), layers.Conv2D(pyramid_size, 1, name="fpn_c3p3")(c3)]
    )
    p2 = layers.Add(name="fpn_p2add")(
        [layers.UpSampling2D(2, name="fpn_p3upsampled")(p3), layers.Conv2D(pyramid_size, 1, name="fpn_c2p2")(c2)]
    )
    p2 = layers.Conv2D(pyramid_size, 3, padding="same", name="fpn_p2")(p2)
    p3 = layers.Conv2D(pyramid_size, 3, padding="same", name="fpn_p3")(p3)
    p4 = layers.Conv2D(pyramid_size, 3, padding="same", name="fpn_p4")(p4)
    p5 = layers.Conv2D(pyramid_size, 3, padding="same", name="fpn_p5")(p5)
    p6 = layers.MaxPooling2D(pool_size=1, strides=2, name="fpn_p6")(p5)
    return keras.Model([c2, c3, c4, c5], [p2, p3, p4, p5, p6], name="fpn")
