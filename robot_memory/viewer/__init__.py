"""The live view in a browser (Rerun's web viewer); optional: the [viewer] extra."""
