using Microsoft.AspNetCore.Http.HttpResults;

namespace MetaCompute.Api.Infrastructure;

/// <summary>The time axis of availability and utilization: [from, to) cut into steps, the last one possibly shorter.</summary>
public static class TimeSteps
{
    public const int MaxSteps = 500;
    public const int DefaultStepMinutes = 60;
    public const int MaxStepMinutes = 7 * 24 * 60;
    public static readonly TimeSpan DefaultSpan = TimeSpan.FromDays(1);

    /// <summary>
    /// The axis asked for, with its defaults filled in (from: now; to: a day after from; step: an hour), or a 400
    /// naming the field at fault. The cap on steps holds whichever parameters were given.
    /// </summary>
    public static (DateTimeOffset From, DateTimeOffset To, TimeSpan Step, ValidationProblem? Problem) Resolve(DateTimeOffset? from, DateTimeOffset? to,
        int? stepMinutes, DateTimeOffset now)
    {
        var step = TimeSpan.FromMinutes(stepMinutes ?? DefaultStepMinutes);
        var start = Reservations.BookingRules.TruncateToSecond(from ?? now);
        var end = to ?? start + DefaultSpan;
        if (end <= start)
        {
            return (start, end, step, Problems.Invalid("to", from is null ? "to must be after now (from defaults to now)." : "to must be after from."));
        }

        return (end - start) / step > MaxSteps
            ? (start, end, step, Problems.Invalid("stepMinutes", $"Ask for at most {MaxSteps} steps: widen the step or shorten the range."))
            : (start, end, step, null);
    }

    public static IEnumerable<(DateTimeOffset Start, DateTimeOffset End)> Cut(DateTimeOffset from, DateTimeOffset to, TimeSpan step)
    {
        for (var start = from; start < to; start += step)
        {
            yield return (start, start + step < to ? start + step : to);
        }
    }
}
