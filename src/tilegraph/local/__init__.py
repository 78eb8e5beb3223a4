"""Running the whole product on one machine: the AWS emulator and `tilegraph dev`."""
