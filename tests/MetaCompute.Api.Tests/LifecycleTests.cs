using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

/// <summary>The scheduler's lifecycle tick, driven directly at chosen times; nothing sleeps.</summary>
public sealed class LifecycleTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "us-ohio-1-h100";
    private static readonly SchedulerOptions Options = new();

    private async Task<LifecycleTick.Result> TickAsync(DateTimeOffset now)
    {
        await using var scope = api.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
        return await LifecycleTick.RunAsync(db, Options, now, CancellationToken.None);
    }

    private async Task<(ReservationStatus Status, List<(string Type, DateTimeOffset At)> Events)> StateAsync(string id) =>
        await api.WithDbAsync(async db =>
        {
            var reservationId = Guid.Parse(id);
            var status = await db.Reservations.Where(r => r.Id == reservationId).Select(r => r.Status).SingleAsync();
            var events = await db.Events.Where(e => e.ReservationId == reservationId).OrderBy(e => e.Id)
                .Select(e => new { e.Type, e.OccurredAt }).ToListAsync();
            return (status, events.Select(e => (e.Type, e.OccurredAt)).ToList());
        });

    private async Task<ReservationResponse> BookAsync(int daysAhead, TestTenant? tenant = null)
    {
        tenant ??= await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = DateTimeOffset.UtcNow.AddDays(daysAhead);
        start = new DateTimeOffset(start.Year, start.Month, start.Day, start.Hour, 0, 0, TimeSpan.Zero);
        return await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 4, tier = "reserved" }))
            .ReadReservationAsync();
    }

    [Fact]
    public async Task A_reservation_activates_at_its_start_warns_before_its_end_and_completes_at_its_end_even_with_late_ticks()
    {
        var r = await BookAsync(3);
        var (start, end) = (r.StartAt, r.EndAt);

        await TickAsync(start.AddSeconds(-1));
        Assert.Equal(ReservationStatus.Scheduled, (await StateAsync(r.Id)).Status);

        await TickAsync(start.AddMinutes(10));
        var active = await StateAsync(r.Id);
        Assert.Equal(ReservationStatus.Active, active.Status);
        Assert.Equal([(EventTypes.LeaseProvisioning, start), (EventTypes.ReservationActivated, start)], active.Events.Skip(1).ToList());

        await TickAsync(end.AddMinutes(-39));
        Assert.Equal((EventTypes.ReservationEndingSoon, end.AddMinutes(-40)), (await StateAsync(r.Id)).Events[^1]);

        await TickAsync(end.AddMinutes(5));
        var done = await StateAsync(r.Id);
        Assert.Equal(ReservationStatus.Completed, done.Status);
        Assert.Equal((EventTypes.ReservationCompleted, end), done.Events[^1]);

        var again = await TickAsync(end.AddMinutes(5));
        Assert.Equal((0, 0, 0), (again.Activated, again.EndingSoon, again.Completed));
        Assert.Equal(done.Events.Count, (await StateAsync(r.Id)).Events.Count);
    }

    [Fact]
    public async Task One_very_late_tick_records_every_boundary_at_its_own_time_in_order()
    {
        var r = await BookAsync(10);
        await TickAsync(r.EndAt.AddHours(1));
        var state = await StateAsync(r.Id);
        Assert.Equal(ReservationStatus.Completed, state.Status);
        Assert.Equal(
            [
                (EventTypes.ReservationScheduled, state.Events[0].At),
                (EventTypes.LeaseProvisioning, r.StartAt),
                (EventTypes.ReservationActivated, r.StartAt),
                (EventTypes.ReservationEndingSoon, r.EndAt.AddMinutes(-40)),
                (EventTypes.ReservationCompleted, r.EndAt),
            ],
            state.Events);
    }

    [Fact]
    public async Task A_cancelled_reservation_never_activates()
    {
        var tenant = await api.CreateTenantAsync();
        var r = await BookAsync(20, tenant);
        using var client = api.ClientWithKey(tenant.ApiKey);
        (await client.PostIdempotentAsync($"/v1/reservations/{r.Id}/cancel", null)).EnsureSuccessStatusCode();

        await TickAsync(r.EndAt.AddHours(1));

        var state = await StateAsync(r.Id);
        Assert.Equal(ReservationStatus.Cancelled, state.Status);
        Assert.Equal([EventTypes.ReservationScheduled, EventTypes.ReservationCancelled], state.Events.Select(e => e.Type));
    }

    [Fact]
    public async Task An_extension_after_the_warning_gets_a_new_warning_before_the_new_end()
    {
        var tenant = await api.CreateTenantAsync();
        var r = await BookAsync(30, tenant);
        await TickAsync(r.EndAt.AddMinutes(-39));
        using var client = api.ClientWithKey(tenant.ApiKey);
        var extended = await (await client.PostIdempotentAsync($"/v1/reservations/{r.Id}/extend", new { additionalHours = 2 })).ReadReservationAsync();

        await TickAsync(extended.EndAt.AddMinutes(-39));

        var warnings = (await StateAsync(r.Id)).Events.Where(e => e.Type == EventTypes.ReservationEndingSoon).Select(e => e.At);
        Assert.Equal([r.EndAt.AddMinutes(-40), extended.EndAt.AddMinutes(-40)], warnings);
    }
}
