"""amber's compiled parts: the pickle scanner's opcode walker (``amber.security._cwalk``)
and hot loops of the formats (``amber._speedups``).

Both are optional: where no C compiler is found the build goes on without them, and amber
uses their pure-Python twins, which give the same results, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "amber.security._cwalk",
            ["src/amber/security/_cwalk.c"],
            optional=True,
        ),
        Extension("amber._speedups", ["src/amber/_speedups.c"], optional=True),
    ]
)
