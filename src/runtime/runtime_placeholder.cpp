namespace ds::rt {}
