"""The foundation every layer stands on: params, errors, atomic files, devices, the answer format."""
