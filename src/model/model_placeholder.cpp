namespace ds::model {}
