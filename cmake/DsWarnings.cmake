# Warnings for our own targets (third-party headers come in as SYSTEM).
function(ds_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# One library per layer: ds_layer(NAME SOURCES... ) with links declared by the caller.
function(ds_layer name)
  add_library(${name} STATIC ${ARGN})
  ds_target_warnings(${name})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
endfunction()
