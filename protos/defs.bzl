"""Generates C (protobuf-c and nanopb) and Python from one .proto with Debian's protoc."""

def pm_proto(name, src, options = None):
    """Declares <name>_pbc, <name>_nanopb (cc_library) and <name>_py (Python module).

    Args:
      name: base name of the targets.
      src: the .proto file in this package.
      options: the nanopb .options file; it must be a source of the genrule or nanopb ignores it.
    """
    base = src[:-len(".proto")]
    native.genrule(
        name = name + "_pbc_gen",
        srcs = [src],
        outs = [base + ".pb-c.c", base + ".pb-c.h"],
        cmd = "/usr/bin/protoc -I. --c_out=$(GENDIR) $(location %s)" % src,
    )
    native.cc_library(
        name = name + "_pbc",
        srcs = [base + ".pb-c.c"],
        hdrs = [base + ".pb-c.h"],
        deps = ["//bazel:protobuf_c"],
        visibility = ["//visibility:public"],
    )
    native.genrule(
        name = name + "_nanopb_gen",
        srcs = [src] + ([options] if options else []),
        outs = [base + ".pb.c", base + ".pb.h"],
        cmd = ("/usr/bin/protoc -I. --plugin=protoc-gen-nanopb=/usr/bin/protoc-gen-nanopb " +
               "--nanopb_out=$(GENDIR) $(location %s)") % src,
    )
    native.cc_library(
        name = name + "_nanopb",
        srcs = [base + ".pb.c"],
        hdrs = [base + ".pb.h"],
        deps = ["//bazel:nanopb"],
        visibility = ["//visibility:public"],
    )
    native.genrule(
        name = name + "_py",
        srcs = [src],
        outs = [base + "_pb2.py"],
        cmd = "/usr/bin/protoc -I. --python_out=$(GENDIR) $(location %s)" % src,
        visibility = ["//visibility:public"],
    )
