using System.Globalization;

namespace MetaCompute.Api.Infrastructure;

/// <summary>ETags are the row's PostgreSQL <c>xmin</c>, quoted as a strong validator.</summary>
public static class ETags
{
    public static string Format(uint version) => $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";

}
