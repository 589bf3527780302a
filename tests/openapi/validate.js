// Validate an OpenAPI document with a real validator (swagger-parser):
// schema conformance plus $ref resolution. Exits non-zero on any error.
const SwaggerParser = require("@apidevtools/swagger-parser");

const file = process.argv[2];
if (!file) {
  console.error("usage: validate.js openapi.json");
  process.exit(2);
}
SwaggerParser.validate(file)
  .then((api) => {
    const ops = Object.values(api.paths).reduce((n, item) => n + Object.keys(item).filter(
      (k) => ["get", "post", "put", "patch", "delete"].includes(k)).length, 0);
    console.log(`  ${file}: valid OpenAPI ${api.openapi}, ${ops} operations`);
  })
  .catch((err) => {
    console.error(`${file}: ${err.message}`);
    process.exit(1);
  });
