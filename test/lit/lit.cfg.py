# lit configuration for kiln's FileCheck tests.
import os

import lit.formats

config.name = "kiln"
config.test_format = lit.formats.ShTest(not config.llvm_tools_dir is None)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test", "lit")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]

# kiln's tools first, then FileCheck and not from LLVM.
config.environment["PATH"] = os.pathsep.join(
    [config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])])
