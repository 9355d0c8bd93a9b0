using System.Text.Json;
using MetaCompute.Api.Data;

namespace MetaCompute.Api.Events;

public static class EventLog
{
    private static readonly JsonSerializerOptions DataOptions = new(JsonSerializerDefaults.Web) { Converters = { new Infrastructure.MoneyJsonConverter() } };

    /// <summary>Adds an event to the unit of work, so it commits with the change it records.</summary>
    public static void Append(this MetaComputeDbContext db, string type, Guid? tenantId, Guid? reservationId, DateTimeOffset at, object data) =>
        db.Events.Add(new Event
        {
            TenantId = tenantId,
            ReservationId = reservationId,
            Type = type,
            OccurredAt = at,
            Data = JsonSerializer.SerializeToDocument(data, DataOptions),
        });
}
