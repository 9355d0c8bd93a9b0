namespace MetaCompute.Api.Infrastructure;

/// <summary>The time axis of availability and utilization: [from, to) cut into steps, the last one possibly shorter.</summary>
public static class TimeSteps
{
    public const int MaxSteps = 500;
    public const int DefaultStepMinutes = 60;
    public static readonly TimeSpan DefaultSpan = TimeSpan.FromDays(1);

    public static bool WithinLimit(DateTimeOffset? from, DateTimeOffset? to, int? stepMinutes) =>
        (from is { } f && to is { } t ? (t - f).TotalMinutes : DefaultSpan.TotalMinutes) / (stepMinutes ?? DefaultStepMinutes) <= MaxSteps;

    public static IEnumerable<(DateTimeOffset Start, DateTimeOffset End)> Cut(DateTimeOffset from, DateTimeOffset to, TimeSpan step)
    {
        for (var start = from; start < to; start += step)
        {
            yield return (start, start + step < to ? start + step : to);
        }
    }
}
