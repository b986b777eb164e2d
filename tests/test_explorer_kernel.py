"""An explorer in a real kernel: moving a slider from the frontend redraws the same output.

The frontend's side is simulated exactly as JupyterLab does it: a `comm_msg` with
`{"method": "update", "state": {"value": ...}}` to the slider's comm. The kernel must
answer with an `update_display_data` for the display id of the figure it showed first.
"""

from __future__ import annotations

import queue
import time

import pytest
from jupyter_client.manager import start_new_kernel

SETUP = """
import matplotlib.pyplot as plt
from ipywidgets import FloatSlider
from labs.widgets import explore

def draw(temperature):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title(f"T={temperature}")
    return fig

explore(draw, temperature=FloatSlider(value=1.0, min=0.1, max=5.0, description="temperature"))
"""


@pytest.fixture
def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _iopub_until(kc, predicate, timeout=30.0):
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        seen.append(msg)
        if predicate(msg):
            return seen
    raise AssertionError(f"no matching message; saw {[m['msg_type'] for m in seen]}")


def test_moving_the_slider_updates_the_figure_in_place(kernel):
    request = kernel.execute(SETUP)
    seen = _iopub_until(
        kernel,
        lambda m: (
            m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
            and m["parent_header"].get("msg_id") == request
        ),
    )
    errors = [m["content"] for m in seen if m["msg_type"] == "error"]
    assert not errors, errors
    slider = next(
        m["content"]["comm_id"]
        for m in seen
        if m["msg_type"] == "comm_open"
        and m["content"]["data"]["state"].get("_model_name") == "FloatSliderModel"
    )
    figure = next(
        m for m in seen if m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]
    )
    display_id = figure["content"]["transient"]["display_id"]

    update = kernel.session.msg(
        "comm_msg",
        {
            "comm_id": slider,
            "data": {"method": "update", "state": {"value": 2.5}, "buffer_paths": []},
        },
    )
    kernel.shell_channel.send(update)
    seen = _iopub_until(kernel, lambda m: m["msg_type"] == "update_display_data")
    redraw = seen[-1]["content"]
    assert redraw["transient"]["display_id"] == display_id
    assert (
        "image/png" in redraw["data"]
        and redraw["data"]["image/png"] != figure["content"]["data"]["image/png"]
    )
