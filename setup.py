"""Builds tokmap's extension module with the project's CMake (the `tokmap_python` target).

pip runs this through pyproject.toml. The CMake build goes to build/temp.*/cmake (or to the
existing build folder named by $TOKMAP_BUILD_DIR, which scripts/setup.sh uses so that pip only
copies the module it already built). $CMAKE_ARGS adds CMake options, e.g.
-DTOKMAP_NATIVE=OFF for a wheel that runs on other CPUs than the build machine's (the default
compiles for the host CPU, as the CLI does). $CMAKE_BUILD_PARALLEL_LEVEL sets the build jobs.
"""
import glob
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        reuse = os.environ.get("TOKMAP_BUILD_DIR")
        build_dir = os.path.abspath(reuse or os.path.join(self.build_temp, "cmake"))
        if not reuse or not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.check_call(
                ["cmake", "-S", ROOT, "-B", build_dir, *generator, "-DCMAKE_BUILD_TYPE=Release",
                 "-DTOKMAP_PYTHON=ON", "-DTOKMAP_TESTS=OFF", "-DTOKMAP_BENCH=OFF",
                 f"-DPython_EXECUTABLE={sys.executable}",
                 *shlex.split(os.environ.get("CMAKE_ARGS", ""))])
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
        subprocess.check_call(
            ["cmake", "--build", build_dir, "--target", "tokmap_python", "-j", jobs])
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = os.path.join(build_dir, "python", "tokmap", "_tokmap" + suffix)
        if not os.path.exists(built):
            found = glob.glob(os.path.join(build_dir, "python", "tokmap", "_tokmap*"))
            raise RuntimeError(
                f"{built} was not built (found {found}): the build folder's Python is not "
                f"{sys.executable}")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)


class BuildPy(build_py):
    """The package's Python files, plus the bundled models (models/) inside the package, so an
    installed tokmap finds demo-brown-gpt2 without the source tree."""

    def run(self):
        super().run()
        models = os.path.join(ROOT, "models")
        target = os.path.join(self.build_lib, "tokmap", "models")
        if os.path.isdir(models):
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(models, target)


setup(
    # setuptools' own build folder beside, not inside, CMake's build/ (gitignored as /build*/).
    options={"build": {"build_base": "build-pip"}},
    ext_modules=[Extension("tokmap._tokmap", sources=[])],
    cmdclass={"build_ext": CMakeBuild, "build_py": BuildPy},
)
