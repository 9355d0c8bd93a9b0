using System.Text.Json;
using System.Text.Json.Serialization;

namespace MetaCompute.Api.Tests.Infrastructure;

public static class Json
{
    /// <summary>The API's wire format: camelCase, enums as snake_case strings.</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower), new MetaCompute.Api.Infrastructure.MoneyJsonConverter() },
    };
}
