using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Admin;

/// <summary>A planned period without allocations on a node; <c>force</c> accepts degrading leases that cannot move.</summary>
public sealed record CreateMaintenanceRequest(DateTimeOffset? StartAt, DateTimeOffset? EndAt, string? Reason, bool? Force = null);

public sealed record AffectedLeaseResponse(string LeaseId, string ReservationId, string TenantId, string Outcome, string? ToNodeId);

public sealed record MaintenanceWindowResponse(string Id, string NodeId, DateTimeOffset StartAt, DateTimeOffset EndAt, string Reason, string? CreatedBy,
    DateTimeOffset CreatedAt, IReadOnlyList<AffectedLeaseResponse> Leases);

public sealed class CreateMaintenanceRequestValidator : AbstractValidator<CreateMaintenanceRequest>
{
    public CreateMaintenanceRequestValidator(TimeProvider time)
    {
        RuleFor(r => r.StartAt).NotNull().Must(s => s >= time.GetUtcNow() - BookingRules.ClockSkew).WithMessage("startAt must not be in the past.");
        RuleFor(r => r.EndAt).NotNull().GreaterThan(r => r.StartAt!.Value).When(r => r.StartAt is not null).WithMessage("endAt must be after startAt.");
        RuleFor(r => r.EndAt).Must((r, e) => e - r.StartAt <= TimeSpan.FromDays(90)).When(r => r.StartAt is not null && r.EndAt is not null)
            .WithMessage("A window lasts at most 90 days.");
        RuleFor(r => r.Reason).NotEmpty().MaximumLength(500);
    }
}

public static class MaintenanceEndpoints
{
    public const string MaintenanceConflictType = Problems.BaseUri + "maintenance-conflict";

    public static RouteGroupBuilder MapMaintenanceEndpoints(this RouteGroupBuilder admin)
    {
        var windows = admin.MapGroup("/nodes/{nodeId:int}/maintenance").WithTags("Admin: fleet");
        windows.MapPost("", ScheduleMaintenance).WithName("scheduleMaintenance")
            .WithSummary("Schedule a maintenance window: leases in its way move to equivalent GPUs, or 409 lists those that cannot unless force")
            .Produces<MaintenanceWindowResponse>(StatusCodes.Status201Created)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        windows.MapGet("", ListMaintenance).WithName("listMaintenance").WithSummary("A node's maintenance windows that have not ended")
            .ProducesProblem(StatusCodes.Status404NotFound);
        windows.MapDelete("/{windowId:guid}", CancelMaintenance).WithName("cancelMaintenance")
            .WithSummary("Take back a maintenance window; the node takes allocations for that period again")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return admin;
    }

    public static async Task<IResult> ScheduleMaintenance(int nodeId, CreateMaintenanceRequest request, ClaimsPrincipal user, MetaComputeDbContext db,
        PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct)
    {
        var node = await db.Nodes.AsNoTracking().FirstOrDefaultAsync(n => n.Id == nodeId, ct);
        if (node is null)
        {
            return Problems.NotFound($"Node '{nodeId}'");
        }

        var now = time.GetUtcNow();
        // Never before now: a window starting "now" begins once the leases in its way have moved.
        var start = BookingRules.StartAtOrAfter(request.StartAt, now);
        var end = BookingRules.TruncateToSecond(request.EndAt!.Value);
        if (end <= start)
        {
            return Problems.Invalid("endAt", "endAt must be after now.");
        }

        var plan = await MaintenanceWindows.ScheduleAsync(db, occupancy, node, start, end, request.Reason!, request.Force ?? false, user.KeyIdOf(), now, ct);
        var leases = plan.Leases.Select(a => new AffectedLeaseResponse(a.LeaseId.ToString(), a.ReservationId.ToString(), a.TenantId.ToString(), a.Outcome,
            a.ToNodeId?.ToString())).ToList();
        if (plan.Window is not { } window)
        {
            return TypedResults.Problem(title: "Maintenance window conflict", statusCode: StatusCodes.Status409Conflict, type: MaintenanceConflictType,
                detail: plan.Problem + (leases.Count > 0 ? " Send force: true to degrade them instead." : ""),
                extensions: new Dictionary<string, object?> { ["leases"] = leases.Where(l => l.Outcome == MaintenanceWindows.Unmovable).ToList() });
        }

        return TypedResults.Created($"/v1/admin/nodes/{nodeId}/maintenance/{window.Id}", ToResponse(window, leases));
    }

    public static async Task<Results<Ok<Page<MaintenanceWindowResponse>>, ProblemHttpResult>> ListMaintenance(int nodeId, MetaComputeDbContext db,
        TimeProvider time, CancellationToken ct)
    {
        if (!await db.Nodes.AnyAsync(n => n.Id == nodeId, ct))
        {
            return Problems.NotFound($"Node '{nodeId}'");
        }

        var now = time.GetUtcNow().UtcDateTime;
        var windows = await db.MaintenanceWindows.AsNoTracking().Where(w => w.NodeId == nodeId && w.Period.UpperBound > now)
            .OrderBy(w => w.Period.LowerBound).ToListAsync(ct);
        return TypedResults.Ok(new Page<MaintenanceWindowResponse>(windows.Select(w => ToResponse(w, [])).ToList(), null));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> CancelMaintenance(int nodeId, Guid windowId, ClaimsPrincipal user,
        MetaComputeDbContext db, PoolOccupancyCache occupancy, TimeProvider time, CancellationToken ct) =>
        await MaintenanceWindows.CancelAsync(db, occupancy, windowId, nodeId, user.KeyIdOf(), time.GetUtcNow(), ct)
            ? TypedResults.NoContent()
            : Problems.NotFound($"Maintenance window '{windowId}' on node '{nodeId}'");

    private static MaintenanceWindowResponse ToResponse(MaintenanceWindow w, IReadOnlyList<AffectedLeaseResponse> leases) => new(w.Id.ToString(),
        w.NodeId.ToString(), new DateTimeOffset(w.Period.LowerBound, TimeSpan.Zero), new DateTimeOffset(w.Period.UpperBound, TimeSpan.Zero), w.Reason,
        w.CreatedBy, w.CreatedAt, leases);
}
