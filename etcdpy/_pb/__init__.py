"""Generated protobuf modules (proto/gen_proto.py). Do not edit."""
