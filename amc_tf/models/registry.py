"""The registry of model families: name -> the subpackage whose module defines FAMILY (an
instance of `amc_tf.models.family.ModelFamily`). It imports no family code: a family is imported
on first use, so the CLI starts without TensorFlow and `saving` can look families up without an
import cycle. Adding a family is one line in FAMILIES (docs/model_families.md).
"""

import importlib

FAMILIES = {
    "amc-gan": "amc_tf.models.amc_gan",
    "imaginator": "amc_tf.models.imaginator",
    "twostreamvan": "amc_tf.models.twostreamvan",
    "g3an": "amc_tf.models.g3an",
}
DEFAULT_FAMILY = "amc-gan"


def family_names():
    return tuple(FAMILIES)


def get_family(name=None):
    """The registered family `name` (default AMC-GAN); an unknown name names the choices."""
    name = name or DEFAULT_FAMILY
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; choose from {', '.join(FAMILIES)}")
    family = importlib.import_module(FAMILIES[name]).FAMILY
    if family.name != name:
        raise RuntimeError(f"{FAMILIES[name]}.FAMILY is named {family.name!r}, registered as "
                           f"{name!r}")
    return family


def choices_by_family(attribute):
    """Each family's `presets` or `ablations` in one line for help texts ("amc-gan: paper-mug,
    ...; g3an: paper, cpu, test"), read from the families themselves (no TensorFlow)."""
    return "; ".join(f"{name}: {', '.join(getattr(get_family(name), attribute))}"
                     for name in FAMILIES)
