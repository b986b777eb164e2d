"""AIGC Lab: the shared package behind the course notebooks.

One module per topic (``attention``, ``gpt``, ``diffusion``, ``t2i`` …), reusable parts
(``vision``: autoencoder and judge; ``lora``: adapters for any ``nn.Linear``), plus cross-cutting
helpers: ``runtime`` (seeding, device, modes), ``checks`` (exercise feedback),
``outcomes`` (measured results), ``checkpoints`` (safetensors cache), ``env``
(environment check), ``plots``, ``widgets``, and the tools ``labs.run`` (execute
lessons) and ``labs.generate`` (write student notebooks from solutions).
"""

__version__ = "0.1.0"
