#include "ops/op_harness.h"
