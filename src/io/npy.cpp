// placeholder
namespace ds::io {}
