"""The generator G (appendix A.1, Figure A)."""

import keras
from keras import ops

from amc_tf.models.amc_gan.config import (AMCConfig, check_appearance_palette,
                                          check_appearance_warp,
                                          check_full_resolution, check_mask_upsample,
                                          latent_size)
from amc_tf.models.common import (Network, batch_norm, fold_time, leaky_relu, tile_spatial,
                                   unfold_time)
from amc_tf.models.convlstm import ConvLSTMCell

# A motion_class of NO_LABEL has the zero one-hot as y^l_m (Table 4's "No y_m" feeds it).
NO_LABEL = -1


def motion_condition(motion_class, velocity, num_classes, displacement=False):
    """y_m = [y^l_m repeated T-1 times, y^v_m] in R^{(T-1) x q} (§3.1); with `displacement`
    also each step's keypoint displacement from y_a, the running sum of y^v_m (2k more)."""
    steps = velocity.shape[1]
    one_hot = ops.one_hot(ops.cast(motion_class, "int32"), num_classes, dtype=velocity.dtype)
    labels = ops.repeat(one_hot[:, None, :], steps, axis=1)
    parts = [labels, velocity] + ([ops.cumsum(velocity, axis=1)] if displacement else [])
    return ops.concatenate(parts, axis=-1)


def backward_warp(image, flow):
    """Each frame's pixel (i, j) read bilinearly from `image` at (i + dy, j + dx), clamped to
    the frame: image (batch, H, W, C); flow (batch, steps, H, W, 2) of (dy, dx) in pixels.
    Returns (batch, steps, H, W, C). Differentiable in the flow (the bilinear weights; the
    integer corners carry no gradient), written with keras.ops for every backend. Computed in
    float32 and returned in the image's dtype: bfloat16's 8-bit mantissa cannot hold a
    coordinate such as 63.3 to a sub-pixel weight."""
    dtype = image.dtype
    image, flow = ops.cast(image, "float32"), ops.cast(flow, "float32")
    batch = ops.shape(flow)[0]
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    rows = ops.arange(height, dtype=flow.dtype)[:, None]
    cols = ops.arange(width, dtype=flow.dtype)[None, :]
    y = ops.clip(rows + flow[..., 0], 0.0, height - 1.0)
    x = ops.clip(cols + flow[..., 1], 0.0, width - 1.0)
    y0 = ops.stop_gradient(ops.floor(y))
    x0 = ops.stop_gradient(ops.floor(x))
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = ops.cast(y0, "int32"), ops.cast(x0, "int32")
    y1, x1 = ops.minimum(y0 + 1, height - 1), ops.minimum(x0 + 1, width - 1)
    # Flat indices into image reshaped to (batch * H * W, C); frame (b, t) reads clip b.
    base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1, 1))
    flat = ops.reshape(image, (-1, channels))
    corner = lambda yi, xi: ops.take(flat, base + yi * width + xi, axis=0)
    top_left, top_right = corner(y0, x0), corner(y0, x1)
    bottom_left, bottom_right = corner(y1, x0), corner(y1, x1)
    top = top_left + wx * (top_right - top_left)
    bottom = bottom_left + wx * (bottom_right - bottom_left)
    return ops.cast(top + wy * (bottom - top), dtype)


@keras.saving.register_keras_serializable(package="amc_tf")
class Generator(Network):
    """x̂|y = G(z | y_a, y_m): the T-1 frames after the appearance condition.

    Args:
        num_frames: T, y_a plus the T-1 generated frames.
        frame_size: H = W, a multiple of 8 (three 2x2 poolings down to φ(y_a)).
        num_classes: c, the motion classes of y^l_m.
        num_keypoints: k; y^v_m has 2k values per step and y_m has q = c + 2k.
        noise_dim: p, the size of z.
        encoder_filters: filters of the five encoder convolutions conv1-conv5; the convLSTM
            has conv5's (its states start from φ(y_a)).
        decoder_filters: filters of the four decoder convolutions.
        kernel_size: square kernel of every convolution and of the convLSTM.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.
        full_resolution_filters: 0 (A.1 exactly), or the filters f of one more level at the
            frames' own size around A.1's networks, which then run at H/2 (not in the paper; the
            cpu preset's route to 64x64 frames at a quarter of the cost): the encoder starts with
            conv2d(f) - lrelu - pool. How the decoder leaves H/2 is full_resolution_output's.
        full_resolution_output: with that level, "gate": the decoder's last A.1 features
            (f = decoder_filters[3] channels at H/2) are upsampled and gated with the encoder's
            H x W conv output, s·u + (1 − s)·skip, before conv2d(3) - tanh; the gate comes from
            those H/2 features (conv2d(f) - lrelu - sigmoid, upsampled; from h_t at H it would
            cost as much as the rest of the decoder). "subpixel": the frame is
            tanh(depth_to_space(conv2d(3·4))) of those H/2 features (sub-pixel convolution, Shi
            et al. 2016): each H/2 position draws its own 2x2 pixels, nothing is interpolated,
            and no H x W feature map is made.
        appearance_mask: not in the paper; each frame becomes m·y_a + (1 − m)·x̂ with a per-pixel
            m = sigmoid(conv2d(1)) of the decoder's last features (depth_to_space of conv2d(4)
            with "subpixel"): where nothing moves the frame is y_a's own pixels.
        appearance_warp: not in the paper; 0, or with the mask the most pixels a per-pixel flow
            f = appearance_warp·tanh(conv2d(2)) (depth_to_space of conv2d(8) with "subpixel")
            moves y_a's pixels: each frame becomes
            m·W(y_a, f) + (1 − m)·x̂, W the bilinear backward warp. Where y_a's own limbs move
            away, the pixels they uncover can be read from the background beside them instead
            of being painted by x̂ (the pale trace of docs/amc_gan.md). The flow's bias starts
            at 0: at initialisation the frames are the mask's alone.
        poolings: 2x2 poolings in the encoder: 3 (A.1: after conv2, conv3 and conv4, φ(y_a)
            at H/8), or 2 (not in the paper: after conv2 and conv3 only, so φ(y_a), the convLSTM
            and the decoder's first gating run at H/4 and that gating has no upsample): arms
            located on a grid twice as fine (docs/amc_gan.md).
        motion_displacement: not in the paper; y_m,t also carries the keypoints' displacement
            from y_a at step t, the running sum of y^v_m up to t (the same condition, summed
            for the convLSTM instead of by it: where an arm is, not only how it moves).
        mask_upsample: with "subpixel" output, how the mask and the flow leave H/2:
            "subpixel" (depth_to_space, each H/2 position draws its own 2x2 block of them) or
            "bilinear" (one value per H/2 position, bilinearly upsampled before the sigmoid /
            tanh): within a 2x2 block the pixels then cannot disagree, so no block-sized
            stipple where y_a's limbs moved away (docs/amc_gan.md); the sigmoid after the
            upsampling still lets an edge fall between two H/2 positions.
        appearance_palette: not in the paper; 0, or with the "subpixel" output the number K of
            colours x̂ is drawn from: c_k = Σ_q a_k(q)·y_a(q) over y_a's H/2 pixels (y_a
            average-pooled), a_k a spatial softmax of conv1x1(K) of the encoder's H/2
            features (conv2's output), and x̂(p) = Σ_k π_k(p)·c_k with π a per-pixel softmax
            of depth_to_space(conv2d(4K)) of the decoder's last features, in place of
            tanh(depth_to_space(conv2d(12))). A limb x̂ draws where y_a's never was then
            takes a colour of y_a (its sleeve) instead of one the decoder must carry through
            the convLSTM: the issue's "clothing keeps y_a's colours" (docs/amc_gan.md).
        gates_at_latent: not in the paper; Conv11-13 (each gate's conv2d - lrelu) run on h_t
            at the convLSTM's own size and their output is upsampled before the sigmoid,
            instead of A.1's conv2d of h_t upsampled 2^i. h_t upsampled bilinearly has no
            detail finer than its own grid, and at the cpu preset Conv13 at H/2 was the
            decoder's costliest convolution
            (docs/amc_gan.md, "The gates at the convLSTM's size").

    Inputs (a dict): appearance float32 (batch, H, W, 3) in [-1, 1]; motion_class int32
    (batch,), NO_LABEL for none; velocity float32 (batch, T-1, 2k); noise float32 (batch, p).
    Output float32 (batch, T-1, H, W, 3) in [-1, 1].

    Example, the paper's NATOPS generator (A.1):
        Generator(num_frames=32, frame_size=64, num_classes=24, num_keypoints=9, noise_dim=128,
                  encoder_filters=(32, 64, 128, 256, 256), decoder_filters=(256, 128, 64, 64),
                  kernel_size=3, leaky_relu_slope=0.2, sync_batchnorm=True)
    """

    def __init__(self, num_frames, frame_size, num_classes, num_keypoints, noise_dim,
                 encoder_filters, decoder_filters, kernel_size, leaky_relu_slope, sync_batchnorm,
                 full_resolution_filters=0, full_resolution_output="gate",
                 appearance_mask=False, appearance_warp=0.0, mask_upsample="subpixel",
                 poolings=3, motion_displacement=False, appearance_palette=0,
                 gates_at_latent=False, **kwargs):
        super().__init__(**kwargs)
        if len(encoder_filters) != 5 or len(decoder_filters) != 4:
            raise ValueError("A.1 has 5 encoder and 4 decoder convolutions")
        check_full_resolution(frame_size, decoder_filters, full_resolution_filters,
                              full_resolution_output, poolings)
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.num_keypoints = num_keypoints
        self.noise_dim = noise_dim
        self.encoder_filters = tuple(encoder_filters)
        self.decoder_filters = tuple(decoder_filters)
        self.kernel_size = kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.sync_batchnorm = sync_batchnorm
        self.full_resolution_filters = int(full_resolution_filters)
        self.full_resolution_output = full_resolution_output
        self.poolings = int(poolings)
        self.motion_displacement = bool(motion_displacement)
        self.appearance_mask = bool(appearance_mask)
        self.appearance_warp = float(appearance_warp)
        check_appearance_warp(self.appearance_warp, self.appearance_mask)
        check_mask_upsample(mask_upsample)
        self.mask_upsample = mask_upsample
        self.appearance_palette = int(appearance_palette)
        self.gates_at_latent = bool(gates_at_latent)
        check_appearance_palette(self.appearance_palette, full_resolution_filters,
                                 full_resolution_output)
        conv = lambda f, name: keras.layers.Conv2D(f, kernel_size, padding="same", name=name)
        norm = lambda name: batch_norm(sync_batchnorm, name)
        # Encoder: conv2d(32) - lrelu - [conv2d - BN - lrelu - pool] x3 - conv2d - BN - lrelu.
        self.encoder_convs = [conv(f, f"enc_conv{i + 1}") for i, f in enumerate(encoder_filters)]
        self.encoder_norms = [norm(f"enc_bn{i + 2}") for i in range(4)]
        self.pool = keras.layers.AveragePooling2D(2, 2)
        # Gated fully-connected layer on y_m,t: g * fc(q) + (1 - g) * q.
        motion_dim = num_classes + (4 if self.motion_displacement else 2) * num_keypoints
        self.motion_fc = keras.layers.Dense(motion_dim, name="motion_fc")
        self.motion_gate = keras.layers.Dense(1, name="motion_gate")
        self.cell = ConvLSTMCell(encoder_filters[-1], kernel_size, name="convlstm")
        # Decoder: [conv2d - BN - lrelu - upsample - gating] x3 - conv2d - BN - lrelu - conv2d(3).
        self.decoder_convs = [conv(f, f"dec_conv{i + 1}") for i, f in enumerate(decoder_filters)]
        self.decoder_norms = [norm(f"dec_bn{i + 1}") for i in range(4)]
        # With sub-pixel output each position's conv2d gives its 2x2 block's pixels.
        block = 4 if self.subpixel_output else 1
        if self.appearance_palette:
            self.palette_attention = keras.layers.Conv2D(self.appearance_palette, 1,
                                                         name="palette_attention")
            self.palette_select = conv(self.appearance_palette * block, "dec_palette")
        else:
            self.output_conv = conv(3 * block, "dec_out")
        field_block = 1 if self.upsampled_fields else block
        if self.appearance_mask:
            self.mask_conv = conv(field_block, "dec_mask")
        if self.appearance_warp:
            self.flow_conv = keras.layers.Conv2D(2 * field_block, kernel_size, padding="same",
                                                 kernel_initializer="zeros", name="dec_flow")
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear")
        # Conv11-13: upsample(2^i) - conv2d - lrelu - sigmoid on the convLSTM output; with
        # fewer poolings the first decoder stages keep the convLSTM's size.
        self.stage_upsamples = [i >= 3 - self.poolings for i in range(3)]
        self.gate_upsample = [
            keras.layers.UpSampling2D(2 ** sum(self.stage_upsamples[:i + 1]),
                                      interpolation="bilinear") for i in range(3)]
        self.gate_convs = [conv(f, f"conv1{i + 1}") for i, f in enumerate(decoder_filters[:3])]
        if self.full_resolution_filters:
            self.full_resolution_conv = conv(full_resolution_filters, "enc_conv0")
        if self.full_resolution_gated:
            self.full_resolution_gate = conv(full_resolution_filters, "conv10")

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "num_classes": self.num_classes,
                "num_keypoints": self.num_keypoints, "noise_dim": self.noise_dim,
                "encoder_filters": self.encoder_filters, "decoder_filters": self.decoder_filters,
                "kernel_size": self.kernel_size, "leaky_relu_slope": self.leaky_relu_slope,
                "sync_batchnorm": self.sync_batchnorm,
                "full_resolution_filters": self.full_resolution_filters,
                "full_resolution_output": self.full_resolution_output,
                "appearance_mask": self.appearance_mask,
                "appearance_warp": self.appearance_warp, "mask_upsample": self.mask_upsample,
                "poolings": self.poolings, "motion_displacement": self.motion_displacement,
                "appearance_palette": self.appearance_palette,
                "gates_at_latent": self.gates_at_latent}

    @classmethod
    def from_config(cls, config):
        # A file saved when the generator took the whole AMCConfig. Its Table 4 ablation flags
        # are not the generator's any more: whoever generates applies them (generator_inputs).
        # Fields added since take their defaults (the generator the file was trained as).
        if "config" in config:
            return build_generator(AMCConfig.from_dict(config["config"]),
                                   name=config.get("name"))
        return super().from_config(config)

    @property
    def full_resolution_gated(self):
        return bool(self.full_resolution_filters) and self.full_resolution_output == "gate"

    @property
    def subpixel_output(self):
        return bool(self.full_resolution_filters) and self.full_resolution_output == "subpixel"

    @property
    def upsampled_fields(self):
        """The mask and flow come one value per H/2 position, upsampled (mask_upsample)."""
        return self.subpixel_output and self.mask_upsample == "bilinear"

    @property
    def latent_size(self):
        """Spatial size of φ(y_a): `poolings` 2x2 poolings (three in A.1), one more with the
        full-resolution level."""
        return latent_size(self.frame_size, self.full_resolution_filters, self.poolings)

    def dummy_inputs(self, batch_size=1):
        return {
            "appearance": ops.zeros((batch_size, self.frame_size, self.frame_size, 3)),
            "motion_class": ops.zeros((batch_size,), dtype="int32"),
            "velocity": ops.zeros((batch_size, self.num_frames - 1, 2 * self.num_keypoints)),
            "noise": ops.zeros((batch_size, self.noise_dim)),
        }

    def lrelu(self, x):
        return leaky_relu(x, self.leaky_relu_slope)

    def encode(self, appearance, training=False):
        """φ(y_a) (batch, latent_size, latent_size, C) and the skip tensors: the outputs of
        Conv4, Conv3, Conv2, then of the full-resolution conv where the decoder gates with it."""
        full = []
        if self.full_resolution_filters:
            x = self.lrelu(self.full_resolution_conv(appearance))
            full = [x] if self.full_resolution_gated else []
            appearance = self.pool(x)
        x = self.lrelu(self.encoder_convs[0](appearance))
        skips = []
        for i in range(1, 5):
            x = self.lrelu(self.encoder_norms[i - 1](self.encoder_convs[i](x), training=training))
            if i < 4:
                skips.append(x)
                if i <= self.poolings:
                    x = self.pool(x)
        return x, skips[::-1] + full

    def skip_concat(self, h, phi, noise):
        """[h_t, φ(y_a), tiled z] channel-wise -> (batch * (T-1), 8, 8, 512 + p) (A.1).

        h: convLSTM outputs folded over time (batch * (T-1), 8, 8, 256); phi (batch, 8, 8, 256);
        noise (batch, p).
        """
        per_step = lambda x: ops.repeat(x, self.num_frames - 1, axis=0)
        return ops.concatenate(
            [h, per_step(phi), per_step(tile_spatial(noise, self.latent_size))], axis=-1)

    def gate(self, s, u, skip):
        """The element-wise gating s·u + (1 − s)·skip of Conv1{1,2,3} (A.1), written as
        skip + s·(u − skip) with the skip tensor broadcast over the T−1 steps: the backward
        then keeps s and u − skip only, not u, 1 − s and a per-step copy of skip (at
        paper-natops each is 0.2-0.7 GiB). s, u: (batch * (T-1), H, W, C); skip (batch, H, W, C)."""
        steps = self.num_frames - 1
        per_clip = lambda x: ops.reshape(x, (-1, steps) + tuple(x.shape[1:]))
        skip = skip[:, None]
        x = skip + per_clip(s) * (per_clip(u) - skip)
        return ops.reshape(x, (-1,) + tuple(x.shape[2:]))

    def to_frame(self, x):
        """The decoder's last features to H x W: sub-pixel blocks, or already there."""
        return ops.depth_to_space(x, 2) if self.subpixel_output else x

    def appearance_fields(self, x):
        """The mask m (N, H, W, 1) and the flow (N, H, W, 2) in pixels (None without the warp)
        from the decoder's last features x (N = batch * (T-1)): with the sub-pixel output
        either as 2x2 blocks or bilinearly upsampled from H/2 (mask_upsample)."""
        to_field = self.upsample if self.upsampled_fields else self.to_frame
        m = ops.sigmoid(to_field(self.mask_conv(x)))
        flow = None
        if self.appearance_warp:
            flow = self.appearance_warp * ops.tanh(to_field(self.flow_conv(x)))
        return m, flow

    def palette_colours(self, appearance, features):
        """The palette c (batch, K, 3): for each k, y_a's H/2 pixels averaged under a spatial
        softmax of conv1x1(K) of the encoder's H/2 features (batch, H/2, H/2, C)."""
        logits = self.palette_attention(features)
        positions = features.shape[1] * features.shape[2]
        weights = ops.softmax(ops.reshape(logits, (-1, positions, self.appearance_palette)),
                              axis=1)
        colours = ops.reshape(self.pool(appearance), (-1, positions, 3))
        return ops.einsum("bpk,bpc->bkc", weights, colours)

    def draw_frames(self, x, appearance, appearance_features, batch_time):
        """x̂ (batch, T-1, H, W, 3) from the decoder's last features x (batch * (T-1), ...):
        tanh of the output conv, or a per-pixel mixture of y_a's palette, whose colours
        `palette_colours` finds from the encoder's H/2 features of y_a."""
        if not self.appearance_palette:
            return unfold_time(ops.tanh(self.to_frame(self.output_conv(x))), batch_time)
        choice = ops.softmax(self.to_frame(self.palette_select(x)), axis=-1)
        colours = self.palette_colours(appearance, appearance_features)
        return ops.einsum("btijk,bkc->btijc", unfold_time(choice, batch_time), colours)

    def call(self, inputs, training=False):
        appearance = ops.cast(inputs["appearance"], self.compute_dtype)
        velocity = ops.cast(inputs["velocity"], self.compute_dtype)
        noise = ops.cast(inputs["noise"], self.compute_dtype)
        y_m = motion_condition(inputs["motion_class"], velocity, self.num_classes,
                               self.motion_displacement)

        phi, skips = self.encode(appearance, training=training)        # 8 x 8 x 256
        gate = ops.sigmoid(self.motion_gate(y_m))                       # (B, T-1, 1)
        y_m = gate * self.motion_fc(y_m) + (1.0 - gate) * y_m          # gated fc (A.1)

        # Unroll the convLSTM T-1 times from states initialised with φ(y_a).
        states = [phi, phi]
        outputs = []
        if not self.cell.built:
            self.cell.build((None, self.latent_size, self.latent_size, y_m.shape[-1]))
        step_weights = self.cell.step_weights(self.num_frames - 1)
        for t in range(self.num_frames - 1):
            h, states = self.cell(tile_spatial(y_m[:, t], self.latent_size), states,
                                  step_weights=step_weights[t])
            outputs.append(h)
        h = ops.stack(outputs, axis=1)                                   # (B, T-1, 8, 8, 256)

        # Decode all time steps as one batch.
        h, batch_time = fold_time(h)
        x = self.skip_concat(h, phi, noise)
        for i in range(3):
            x = self.lrelu(self.decoder_norms[i](self.decoder_convs[i](x), training=training))
            u = self.upsample(x) if self.stage_upsamples[i] else x
            # Conv1{1,2,3}: the gate from the convLSTM output.
            if self.gates_at_latent:
                s = ops.sigmoid(self.gate_upsample[i](self.lrelu(self.gate_convs[i](h))))
            else:
                s = ops.sigmoid(self.lrelu(self.gate_convs[i](self.gate_upsample[i](h))))
            x = self.gate(s, u, skips[i])
        x = self.lrelu(self.decoder_norms[3](self.decoder_convs[3](x), training=training))
        if self.full_resolution_gated:
            s = ops.sigmoid(self.lrelu(self.full_resolution_gate(x)))
            x = self.gate(self.upsample(s), self.upsample(x), skips[3])
        # skips[2] is conv2's output, at H/2 with the full-resolution level.
        frames = self.draw_frames(x, appearance, skips[2], batch_time)
        if self.appearance_mask:
            m, flow = self.appearance_fields(x)
            source = appearance[:, None]
            if self.appearance_warp:
                source = backward_warp(appearance, unfold_time(flow, batch_time))
            # m·y_a + (1 − m)·x̂, y_a warped or not.
            frames = frames + unfold_time(m, batch_time) * (source - frames)
        return ops.cast(frames, "float32")


def build_generator(config, **kwargs):
    """G of an AMCConfig (its g_lstm_filters is g_encoder_filters[-1]); kwargs go to
    keras.Model (name, ...)."""
    return Generator(
        num_frames=config.num_frames, frame_size=config.frame_size,
        num_classes=config.num_classes, num_keypoints=config.num_keypoints,
        noise_dim=config.noise_dim, encoder_filters=config.g_encoder_filters,
        decoder_filters=config.g_decoder_filters, kernel_size=config.kernel_size,
        leaky_relu_slope=config.leaky_relu_slope, sync_batchnorm=config.sync_batchnorm,
        full_resolution_filters=config.g_full_resolution_filters,
        full_resolution_output=config.g_full_resolution_output,
        appearance_mask=config.g_appearance_mask, appearance_warp=config.g_appearance_warp,
        mask_upsample=config.g_mask_upsample, poolings=config.g_poolings,
        motion_displacement=config.g_motion_displacement,
        appearance_palette=config.g_appearance_palette,
        gates_at_latent=config.g_gates_at_latent, **kwargs)
