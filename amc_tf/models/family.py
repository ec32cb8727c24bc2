"""The model-family contract: what the Trainer, `amc-tf train`, the pipeline, the export, the server,
the client and the evaluation know of a model. Nothing outside a family's subpackage names its
networks, its inputs or its presets.

A family is one subpackage of `amc_tf.models` whose module defines `FAMILY`, an instance of a
`ModelFamily` subclass, and one line in `FAMILIES` of `amc_tf/models/registry.py`
(docs/model_families.md says how).

Conditions. Every family generates from the same, family-independent conditions dict:
    appearance    float32 (B, H, W, 3) in [-1, 1]   y_a at the config's frame_size
                                                     (only if `uses_appearance`)
    motion_class  int32 (B,)                         the class label
    velocity      float32 (B, T-1, 2k) in [-1, 1]    keypoint velocities (only if `uses_velocity`)
    noise         float32 (B, *noise_shape(config))  z
and returns the whole video, float32 (B, T, H, W, 3) in [-1, 1]; frame 0 is y_a where the family
takes an appearance. `amc_tf.inputs` makes the conditions from clips and requests, one way for
training, evaluation, serving and inference.

A config object has at least: name (the preset), num_frames, frame_size, num_classes,
num_keypoints, batch_size, train_steps, steps_per_epoch, mixed_precision, the B.3 classifier's
`clf_*` fields, `to_json()` and `replace(**changes)`.
"""

import importlib

# The registry lives in registry.py (no family code imported there, so `saving` can look
# families up without a cycle); these names stay importable from here.
from amc_tf.models.registry import DEFAULT_FAMILY, FAMILIES, family_names, get_family  # noqa: F401

class ModelFamily:
    """The contract. Subclasses set the class attributes and implement the methods."""

    name = None                 # registry name, e.g. "amc-gan"
    title = None                # the paper, for --help and the model metadata
    presets = ()                # preset names `config()` accepts; "cpu" and "test" are required
    uses_appearance = True      # generation takes y_a (an RGB frame)
    uses_velocity = False       # generation takes keypoint velocities (sampled from a bank)
    ablations = ("none",)       # named ablations `config()` accepts
    # Where the family's code lives; the defaults below use them (override instead if they do
    # not fit). Modules named by string are imported on first use (no TensorFlow at CLI start).
    config_module = None        # its config module: get_preset(name, num_classes,
                                # num_keypoints[, ablation]) (ablation only if it has some)
    config_class = None         # its config dataclass (FamilyConfig: from_json)
    model_class = None          # "module:Class" of the trainable keras.Model, Class(config, name)
    networks_module = None      # the module whose import registers the saved generator's classes
    # Grappler options (tf.config.optimizer.set_experimental_options) its train step is run
    # with; training applies them for the run only (`train.graph_optimizer_options`).
    graph_optimizer_options = {}

    # ------------------------------------------------------------------ configuration
    def config(self, preset, num_classes=None, num_keypoints=None, ablation="none"):
        """The named preset's config, sized to the data (presets that fix a size check it)."""
        if ablation not in self.ablations:
            raise ValueError(f"{self.name} has no ablation {ablation!r}; choose from "
                             f"{', '.join(self.ablations)}")
        extra = {} if ablation == "none" else {"ablation": ablation}
        return self.config_module.get_preset(preset, num_classes=num_classes,
                                             num_keypoints=num_keypoints, **extra)

    def config_from_json(self, text):
        """The config that `config.to_json()` wrote."""
        return self.config_class.from_json(text)

    # ------------------------------------------------------------------ training
    def build(self, config):
        """The trainable keras.Model: compiled with its optimizers, every network and optimizer
        built (call inside `strategy.scope()`). Its `train_step` takes the batches of
        `amc_tf.inputs.clip_to_model_inputs` and averages losses over the global batch."""
        module, _, cls = self.model_class.partition(":")
        model = getattr(importlib.import_module(module), cls)(
            config, name=self.name.replace("-", "_"))
        model.compile()
        model.build_all()
        return model

    def training_phases(self, config):
        """[(phase, steps)] in order; the last phase's steps may be None (the rest). The trainer
        calls `enter_phase(model, phase)` before each; checkpoints resume inside any phase."""
        return [("train", None)]

    def enter_phase(self, model, phase):
        """Switches `model` to `phase` (its train function is rebuilt afterwards)."""

    def generator(self, model):
        """The network that generates: what is saved, exported and served (by default the
        model's `generator` attribute)."""
        return model.generator

    def generator_file(self):
        """File name of the saved generator (`.keras`)."""
        return "generator.keras"

    def load_generator(self, path):
        """The generator saved at `path` (a `.keras` file)."""
        from amc_tf.models import saving
        importlib.import_module(self.networks_module)   # registers the generator's classes
        return saving.load_model(path)

    # ------------------------------------------------------------------ generation
    def noise_shape(self, config):
        """Shape of one example's z (by default a vector of `config.noise_dim`)."""
        return (config.noise_dim,)

    def generate(self, generator, conditions, config, training=False):
        """The whole video (B, T, H, W, 3) in [-1, 1] from the conditions dict (module doc)."""
        raise NotImplementedError

    def signature_inputs(self):
        """Inputs of the `generate` serving signature, in order (besides the outputs' video)."""
        return (("appearance",) if self.uses_appearance else ()) + ("motion_class", "seed")
