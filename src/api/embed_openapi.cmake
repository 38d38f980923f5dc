# Turns the hand-written OpenAPI document (openapi.json) into a C++ source defining openapi_document(), so the
# node serves it without reading files at run time. Run with -DINPUT=<json> -DOUTPUT=<cpp> -P.
file(READ "${INPUT}" document)
string(FIND "${document}" ")openapi\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT}: contains the raw-string delimiter )openapi\"")
endif()
file(WRITE "${OUTPUT}" "// Generated from src/api/openapi.json by src/api/embed_openapi.cmake; edit the JSON.
#include \"api/openapi.hpp\"

namespace infernet::api {

std::string_view openapi_document() {
  static constexpr std::string_view kDocument = R\"openapi(${document})openapi\";
  return kDocument;
}

}  // namespace infernet::api
")
