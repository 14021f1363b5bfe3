#pragma once
#include "transport.hpp"
namespace tck {
Result<std::unique_ptr<Transport>> make_ofi_transport();
}
