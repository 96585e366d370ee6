"""The Space's `/segment` endpoint through `gradio_client`, against the app served on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from test_space_handlers import grabcut_path

from hf_iis import space

torch.set_num_threads(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def client(tiny_checkpoint):
    # a budget below the GrabCut photo's 481 x 321 pixels: the endpoint must upsample the mask back
    demo = space.build_demo(model=str(tiny_checkpoint), max_pixels=60_000)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **space.launch_kwargs())
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_segment_endpoint_returns_a_full_size_mask_and_a_score(client, data_root):
    path = grabcut_path(data_root)
    width, height = Image.open(path).size
    clicks = json.dumps([[width // 2, height // 2, 1], [10, 10, -1]])
    mask_path, score = client.predict(handle_file(str(path)), clicks, 2, 4, api_name="/segment")
    mask = np.asarray(Image.open(mask_path))
    assert mask.shape == (height, width) and set(np.unique(mask)) <= {0, 255}
    assert isinstance(score, float) and 0.0 <= score <= 1.0


def test_segment_endpoint_reports_bad_clicks_readably(client, data_root):
    with pytest.raises(AppError, match="JSON"):
        client.predict(handle_file(str(grabcut_path(data_root))), "[[1, 2", 1, 0, api_name="/segment")


def test_only_the_segment_endpoint_is_public(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(named) == ["/segment"]
    names = [p["parameter_name"] for p in named["/segment"]["parameters"]]
    assert names == ["image", "clicks", "tta", "triangulation"]
