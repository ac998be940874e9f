"""The one compiled part: the pickle scanner's opcode walker (``amber.security._cwalk``).

It is optional: where no C compiler is found the build goes on without it, and amber uses
the pure-Python walker, which gives the same results, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "amber.security._cwalk",
            ["src/amber/security/_cwalk.c"],
            optional=True,
        )
    ]
)
