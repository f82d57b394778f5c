# DS_SANITIZE="address;undefined" builds everything with ASan + UBSan; UB aborts (no silent recovery).
if(DS_SANITIZE)
  string(REPLACE ";" "," _ds_san "${DS_SANITIZE}")
  # -O1, the optimisation level the sanitizers' documentation recommends (after the build type's -O2, so it wins): at
  # -O2 the instrumented SIMD kernel files took 4-6 minutes each to compile, and the whole sanitized build half of CI.
  add_compile_options(-fsanitize=${_ds_san} -fno-omit-frame-pointer -fno-sanitize-recover=all -O1)
  add_link_options(-fsanitize=${_ds_san})
endif()
if(DS_NATIVE)
  add_compile_options(-march=native)
endif()
