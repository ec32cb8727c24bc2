"""Contact sheets of preprocessed clips: a row per clip, every `step`-th frame, keypoints drawn."""

import glob
import os

import numpy as np

from amc_tf.data import datasets, features, preprocess

LABEL_WIDTH = 190


def _keypoint_colours(k):
    import cv2
    hsv = np.uint8([[[int(180 * i / k), 220, 255] for i in range(k)]])
    return [tuple(int(c) for c in rgb) for rgb in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]]


def render_sheet(videos, points, labels, step=4, zoom=2):
    """An RGB image: row i shows videos[i] (T, H, W, 3) every `step` frames, points[i] (T, K, 2).

    labels: one text per row, drawn in a left margin.
    """
    import cv2
    colours = _keypoint_colours(points.shape[2])
    rows = []
    for video, pts, label in zip(videos, points, labels):
        cells = []
        for t in range(0, video.shape[0], step):
            cell = cv2.resize(np.ascontiguousarray(video[t]), None, fx=zoom, fy=zoom,
                              interpolation=cv2.INTER_NEAREST)
            for (x, y), colour in zip(pts[t], colours):
                # Pixel-index keypoints -> the zoomed cell, in 4-bit fixed point.
                centre = (int(round(((x + 0.5) * zoom - 0.5) * 16)),
                          int(round(((y + 0.5) * zoom - 0.5) * 16)))
                cv2.circle(cell, centre, 2 * 16, colour, -1, cv2.LINE_AA, 4)
            cv2.putText(cell, str(t), (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 255), 1,
                        cv2.LINE_AA)
            cells.append(np.pad(cell, ((1, 1), (1, 1), (0, 0))))
        margin = np.full((cells[0].shape[0], LABEL_WIDTH, 3), 255, np.uint8)
        for i, line in enumerate(str(label).split("\n")[:4]):
            cv2.putText(margin, line[:26], (4, 16 + 15 * i), cv2.FONT_HERSHEY_PLAIN, 0.8,
                        (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([margin] + cells, axis=1))
    return np.concatenate(rows, axis=0)


def write_contact_sheet(examples_dir, out_png, num_clips=6, split="train", dataset=None, step=4):
    """Writes a PNG of `num_clips` preprocessed clips from `examples_dir/Split-<split>/*.gz`.

    dataset: a dataset style name (`datasets.names()`); None reads it (and the class names) from
      `examples_dir/summary.json`.
    Returns out_png.
    """
    import cv2
    import tensorflow as tf
    summary = preprocess.read_summary(examples_dir)
    style = datasets.get(dataset or summary["dataset"])
    files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
    if not files:
        raise FileNotFoundError(f"no {split} examples under {examples_dir}/Split-{split}/")
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(num_clips))
    if not records:
        raise ValueError(f"the {split} split under {examples_dir} is empty")
    k = style.num_keypoints
    parsed = features.parse_examples(tf.stack(records), k)
    videos = parsed[features.VIDEO].numpy()
    points = parsed[features.KEYPOINTS].numpy().reshape(len(records), features.NUM_FRAMES, k, 2)
    names = summary["class_names"]
    labels = []
    for c, clip_id in zip(parsed[features.MOTION_CLASS].numpy(), parsed[features.CLIP_ID].numpy()):
        clip_id = clip_id.decode()
        labels.append(f"{c}: {names[c]}\n{clip_id.split('#')[0][-26:]}\n#{clip_id.split('#')[-1]}")
    sheet = render_sheet(videos, points, labels, step=step)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    if not cv2.imwrite(out_png, sheet[..., ::-1]):
        raise OSError(f"cannot write {out_png}")
    return out_png
