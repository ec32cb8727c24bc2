"""amc_tf: AMC-GAN (Jang, Kim, Song, ICML 2018) in TensorFlow/Keras 3 + TFX + TF Serving."""
from setuptools import find_packages, setup

setup(
    name="amc_tf",
    version="0.1.0",
    description="Video prediction with appearance and motion conditions (AMC-GAN) on TFX",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["amc_tf", "amc_tf.*", "pipeline", "pipeline.*",
                                    "serving", "serving.*", "amc_app", "amc_app.*"]),
    package_data={"": ["*.pbtxt", "*.json"]},
    include_package_data=True,
    # Exact versions live in requirements/lock.txt (installed by scripts/setup.sh); these are the
    # ranges amc_tf is written against. No tensorflow-addons: end-of-life, TF <= 2.15 only.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tfx>=1.21,<1.22",
        "tensorflow-model-analysis>=0.52,<0.53",
        "tensorflow-serving-api>=2.19",
        "apache-beam>=2.77",
        "kfp>=2.16,<2.17",
        "grpcio",
        "numpy",
        "scipy",          # matrix square root of the Fréchet distance
        "pillow",
        "imageio",
        "opencv-python-headless",
        "tensorboard>=2.21,<2.22",
    ],
    entry_points={"console_scripts": ["amc-tf=amc_app.cli:main"]},
)
