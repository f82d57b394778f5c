# DS_SANITIZE="address;undefined" builds everything with ASan + UBSan; UB aborts (no silent recovery).
if(DS_SANITIZE)
  string(REPLACE ";" "," _ds_san "${DS_SANITIZE}")
  add_compile_options(-fsanitize=${_ds_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_ds_san})
endif()
if(DS_NATIVE)
  add_compile_options(-march=native)
endif()
