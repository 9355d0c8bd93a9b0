using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// Money on the wire is a decimal string ("2.49", "63.744"), as AWS's price lists write it, never a JSON number, which
/// most clients read into binary floating point (docs/decisions/0006-money-on-the-wire.md). Amounts carry at most six
/// decimals (the micro-dollar) and no trailing zeros. Read either way, so a client that sends numbers is still understood
/// exactly.
/// </summary>
public sealed class MoneyJsonConverter : JsonConverter<decimal>
{
    public const string Pattern = "^-?[0-9]{1,12}(\\.[0-9]{1,6})?$";

    public override decimal Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number => reader.GetDecimal(),
        JsonTokenType.String when decimal.TryParse(reader.GetString(), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint,
            CultureInfo.InvariantCulture, out var value) => value,
        _ => throw new JsonException("Send an amount as a decimal string such as \"2.49\"."),
    };

    public override void Write(Utf8JsonWriter writer, decimal value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString("0.############################", CultureInfo.InvariantCulture));
}
